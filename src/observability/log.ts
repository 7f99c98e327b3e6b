// Structured JSON logs (pino). Secret-bearing fields are redacted by path, wherever they appear in a log object,
// so that a careless `log.info({ env })` cannot print a credential.
import { type Logger, pino } from "pino";

export const redactPaths = [
  "password",
  "*.password",
  "secret",
  "*.secret",
  "token",
  "*.token",
  "*.env.RESTIC_PASSWORD",
  "*.env.AWS_SECRET_ACCESS_KEY",
  "*.env.AWS_SESSION_TOKEN",
  "*.headers.authorization",
  "*.headers.Authorization",
  "*.stringData",
  "*.data",
];

export function createLogger(level = process.env.AUXO_LOG_LEVEL ?? "info", destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { app: "auxo" }, redact: { paths: redactPaths, censor: "[redacted]" } }, destination);
}
