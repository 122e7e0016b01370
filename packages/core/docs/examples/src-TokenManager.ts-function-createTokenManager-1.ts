import { TokenManager } from '../../src'

// Every grant in the store kept fresh by this process, and told when one needs the user again.
const tokens = TokenManager.createTokenManager({
  tokenEndpoint: "https://auth.example.com/oauth/token",
  clientId: "my-app",
  clientSecret: process.env.CLIENT_SECRET,
  store: "./data/grants.db",
  background: { intervalSeconds: 5, maxPerSecond: 20 }
})
tokens.on("reauthRequired", ({ key, reason }) => emailUser(key, reason))
