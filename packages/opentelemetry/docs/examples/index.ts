import './src-Otel.ts-constant-logger-0'
import './src-Otel.ts-function-layer-0'
