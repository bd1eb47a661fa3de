/* address.c: a socket address as Node shows it, a string and a port. */
#ifndef SOCKETEER_ADDRESS_H
#define SOCKETEER_ADDRESS_H

#include <node_api.h>
#include <sys/socket.h>

void put_address(napi_env env, const struct sockaddr_storage *ss, napi_value *address,
                 napi_value *port);

#endif
