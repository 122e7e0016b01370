import { TokenManager } from '../../src'

const tokens = TokenManager.createTokenManager({
  tokenEndpoint: "https://auth.example.com/oauth/token",
  clientId: "my-app",
  clientSecret: process.env.CLIENT_SECRET
})
await tokens.setGrant("user-42", { accessToken, refreshToken, expiresIn: 3600 })
const accessToken = await tokens.getAccessToken("user-42")
