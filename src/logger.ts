import pino, { type Logger } from 'pino';
import type { Config } from './config';

/** Structured JSON logs on stdout, one object per line. */
export function createLogger(level: Config['logLevel']): Logger {
  return pino({
    level,
    base: { service: 'fhir-r4-server' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization'], remove: true },
  });
}
