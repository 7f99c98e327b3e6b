# The one Auxo image: `auxo operator` and the MediaAgent pods' `auxo agent`, with restic inside. Non-root.
#   docker build -t ghcr.io/auxo-dev/auxo:dev .
# (The project's own machines have no Docker engine; build it on a laptop or in a CI that has one.)

ARG NODE_VERSION=24.21.0
ARG RESTIC_VERSION=v0.18.1

FROM golang:1.26 AS restic
ARG RESTIC_VERSION
# A wrapper module: the same way hack/tools.sh builds restic for the tests.
WORKDIR /src
RUN go mod init local/restic && go mod edit -require=github.com/restic/restic@${RESTIC_VERSION} \
 && go mod edit -tool=github.com/restic/restic/cmd/restic && go mod tidy \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/restic github.com/restic/restic/cmd/restic \
 && /out/restic version

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
# ca-certificates for S3 and REST libraries over TLS; nothing else.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=restic /out/restic /usr/local/bin/restic
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
RUN ln -s /app/bin/auxo /usr/local/bin/auxo
# Node.js 24 runs the TypeScript sources directly (type stripping); there is no build step to drift from.
ENV NODE_ENV=production HOME=/tmp RESTIC_CACHE_DIR=/tmp/restic-cache
USER 65532:65532
ENTRYPOINT ["auxo"]
CMD ["operator"]
