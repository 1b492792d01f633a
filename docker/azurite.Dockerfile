# Azurite (Blob endpoint) for the compose stack, from the same npm lockfile the tests install
# (package.json pins 3.37.0: 3.35 mishandles delta-rs listings), on the official Node image.
FROM node:20-slim
WORKDIR /opt/azurite
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force
ENV PATH=/opt/azurite/node_modules/.bin:$PATH
USER node
