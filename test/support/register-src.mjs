// node --import tsx --import ./test/support/register-src.mjs script.ts
import { register } from "node:module"

register("./src-hooks.mjs", import.meta.url)
