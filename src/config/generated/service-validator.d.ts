// The types of service-validator.js, which scripts/validator.mjs generates from schema/ at build
// time (ajv standalone code; the .js is not in git).
import type { ValidateFunction } from 'ajv';

declare const validate: ValidateFunction;
export default validate;
