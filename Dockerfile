# syntax=docker/dockerfile:1
# Portico runs its TypeScript sources directly on Node 24 (type stripping): no build stage is
# needed, only production dependencies.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out the pinned `node` devDependency: the image has its own Node 24.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY router ./router
COPY tls ./tls
COPY controller ./controller
COPY src ./src
# The image's unprivileged user; ports above 1024 need no capability.
USER node
EXPOSE 8080 8443 10254
HEALTHCHECK --interval=10s --timeout=2s CMD node -e "fetch('http://127.0.0.1:10254/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/portico.js"]
CMD ["serve", "--manifests", "/etc/portico/manifests", "--http-port", "8080", "--https-port", "8443", "--admin-port", "10254"]
