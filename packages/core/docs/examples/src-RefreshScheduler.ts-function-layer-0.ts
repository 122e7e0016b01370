import { Refresher, RefreshScheduler, TokenEndpoint, TokenStore } from '../../src'
import { Layer } from "effect"

const Engine = RefreshScheduler.layer({ interval: "5 seconds" }).pipe(
  Layer.provideMerge(Refresher.layer()),
  Layer.provideMerge(TokenStore.layerMemory)
)
