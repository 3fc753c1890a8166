# FHIR R4 server image. Build: docker build -t fhir-r4-server .
# Run (embedded store): docker run -p 8080:8080 -v fhir-data:/data fhir-r4-server
# With MongoDB: see docker-compose.yml.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: all dependencies, compile TypeScript to dist/ and the records console to console/dist/ ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script builds the console, whose sources are only copied below.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
# profiles/ may be empty, and git does not keep empty directories: make sure it exists for the copy below.
RUN npm run build && mkdir -p profiles

# --- runtime: production dependencies, compiled code, conformance resources ---
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production PORT=8080 DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the console build) needs dev dependencies; the build stage has run it.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# Owned by root and read-only for the node user: the process can write only to /data.
COPY --from=build /app/dist ./dist
COPY --from=build /app/console/dist ./console/dist
COPY --from=build /app/profiles ./profiles
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8080
# Slim images have no curl: node's own fetch asks for the CapabilityStatement at BASE_URL's path (/fhir).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const p=new URL(process.env.BASE_URL||'http://x/fhir').pathname.replace(/[/]+$/,'');fetch('http://127.0.0.1:'+(process.env.PORT||8080)+p+'/metadata',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Not `npm start`: its prestart hook would rebuild, and npm would stand between the signal and node.
CMD ["node", "dist/main.js"]
