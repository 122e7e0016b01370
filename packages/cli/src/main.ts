#!/usr/bin/env node
/**
 * The `renew` executable.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { run } from "./Cli.js"

run(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // A non-zero code makes runMain call process.exit(code); 0 lets the process end on its own.
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? (exit.value as number) : 70)
  })
)
