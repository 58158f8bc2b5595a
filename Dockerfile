# syntax=docker/dockerfile:1
# Portico's image: `portico serve --kubernetes` as an unprivileged user.
#
#   docker build -t registry.example.com/portico:0.1.0 .
#   docker push registry.example.com/portico:0.1.0
#
# Portico runs its TypeScript sources directly with Node 24's type stripping, so there is no
# build stage, only production dependencies. Node itself comes from the official base image:
# the repository's pinned `node` package is a devDependency (it gives a checkout Node 24 where the
# system's is older) and `npm ci --omit=dev` leaves it out, so the base image must be Node 24.
# NODE_VERSION follows that pin (package.json devDependencies.node).

ARG NODE_VERSION=24.21.0

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script; --ignore-scripts keeps the build from running any.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
# Refuse a base image older than Node 24 (type stripping and the APIs Portico uses).
RUN node -e "const m = Number(process.versions.node.split('.')[0]); if (m < 24) { console.error('Portico needs Node 24, the base image has ' + process.version); process.exit(1); }"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY router ./router
COPY tls ./tls
COPY controller ./controller
COPY src ./src
# The base image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric
# user. The default ports (8080, 8443, 10254) are unprivileged, so `docker run` needs no
# capability; deploy/ passes its own args (80/443, allowed by a sysctl in the pod).
USER 1000:1000
EXPOSE 8080 8443 10254
HEALTHCHECK --interval=10s --timeout=2s CMD ["node", "-e", "fetch('http://127.0.0.1:10254/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/portico.js"]
# In a cluster; deploy/ passes its own args. For a directory of manifests instead:
#   docker run -v $PWD/manifests:/etc/portico/manifests:ro IMAGE serve --manifests /etc/portico/manifests --http-port 8080 --https-port 8443
CMD ["serve", "--kubernetes", "--http-port", "8080", "--https-port", "8443", "--admin-port", "10254"]
