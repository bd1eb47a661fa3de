/*
 * A socket address as Node shows it: "1.2.3.4" or "::1" ("fe80::1%eth0" for a link-local
 * address) and the port; null and null for any other family (a Unix peer).
 */
#include "address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void put_address(napi_env env, const struct sockaddr_storage *ss, napi_value *address,
                 napi_value *port) {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
  unsigned number = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    number = ntohs(in->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, INET6_ADDRSTRLEN);
    if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) && in6->sin6_scope_id != 0) {
      /* as Node shows it: the interface's name, else its index */
      char name[IF_NAMESIZE];
      size_t used = strlen(text);
      if (if_indextoname(in6->sin6_scope_id, name) != NULL) {
        snprintf(text + used, sizeof text - used, "%%%s", name);
      } else {
        snprintf(text + used, sizeof text - used, "%%%u", (unsigned)in6->sin6_scope_id);
      }
    }
    number = ntohs(in6->sin6_port);
  } else {
    napi_get_null(env, address);
    napi_get_null(env, port);
    return;
  }
  napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, address);
  napi_create_uint32(env, number, port);
}

