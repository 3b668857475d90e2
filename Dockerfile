# Postern gateway image. Build: docker build -t postern . ; run: docker run -p 25:2525 -v postern-var:/app/var postern
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY docker/postern.yaml ./config/postern.yaml
COPY config/policy.yaml ./config/policy.yaml
# The supervisor runs as root, like Postfix's master, and drops smtpd and the portal to the
# account postern (README: Roles and privileges); under USER node nothing would drop and the
# Internet-facing smtpd could read the KEK.
RUN useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group postern \
 && mkdir -p /app/var && chmod 0700 /app/var
VOLUME ["/app/var"]
EXPOSE 2525
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js", "start", "-c", "config/postern.yaml"]
