// The types of request-validator.js, which scripts/validator.mjs generates from
// ../request-schema.ts at build time (ajv standalone code; the .js is not in git).
import type { ValidateFunction } from 'ajv';

declare const validate: ValidateFunction;
export default validate;
