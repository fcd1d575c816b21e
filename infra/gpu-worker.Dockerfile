# syntax=docker/dockerfile:1.7
#
# The GPU worker image: gpu-worker/src/server.ts on Node 22 with onnxruntime-node's CUDA 12 execution
# provider. Build from the repository root (the context must be the root; the ignore file next to this
# Dockerfile, gpu-worker.Dockerfile.dockerignore, is the one BuildKit uses with -f):
#
#   docker buildx build -f infra/gpu-worker.Dockerfile -t REGISTRY/hypencoder-gpu-worker:TAG --push .
#
# Stages: node (verified Node tarball) → deps (npm ci under the repo's install-script policy, then the
# CUDA binaries on purpose) → runtime (CUDA 12 + cuDNN 9 runtime, non-root, sources only).
# docs/DEPLOYMENT.md covers running it; infra/k8s/ is the Kubernetes side.

# CUDA 12 + cuDNN 9: what onnxruntime-node 1.30's CUDA EP (the Microsoft.ML.OnnxRuntime.Gpu.Linux
# 1.30.0 NuGet binaries) links against. ORT's docs: a build against CUDA 12.x runs on any CUDA 12.x
# (minor-version compatibility); a cuDNN 8 build does not run on cuDNN 9 or the reverse. The 12.8 image
# needs a host driver that supports CUDA 12.8 (R570+), or set NVIDIA_DISABLE_REQUIRE=1 on purpose.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04
# Same distribution as the CUDA image, so native modules built or picked in "deps" match its glibc.
ARG BUILD_IMAGE=ubuntu:22.04

# ---------------------------------------------------------------------------------------------------
FROM ${BUILD_IMAGE} AS node
# Pinned Node 22 (usearch 2.26 requires node >= 22). The hash is the linux-x64 .tar.xz line of
# https://nodejs.org/dist/v22.23.1/SHASUMS256.txt (that file is signed by the release key: SHASUMS256.txt.asc).
# Bump NODE_VERSION and NODE_SHA256 together; the build fails closed on a mismatch.
ARG NODE_VERSION=22.23.1
ARG NODE_SHA256=9749e988f437343b7fa832c69ded82a312e41a03116d766797ac14f6f9eee578
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl xz-utils; \
    rm -rf /var/lib/apt/lists/*; \
    cd /tmp; \
    curl -fsSLO --retry 3 "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz"; \
    echo "${NODE_SHA256}  node-v${NODE_VERSION}-linux-x64.tar.xz" | sha256sum -c -; \
    mkdir -p /opt/node; \
    tar -xJf "node-v${NODE_VERSION}-linux-x64.tar.xz" -C /opt/node --strip-components=1 --no-same-owner; \
    rm -rf "node-v${NODE_VERSION}-linux-x64.tar.xz" /opt/node/include /opt/node/share; \
    /opt/node/bin/node --version

# ---------------------------------------------------------------------------------------------------
FROM ${BUILD_IMAGE} AS deps
ENV PATH=/opt/node/bin:$PATH
COPY --from=node /opt/node /opt/node
# python3/make/g++ only for node-gyp fallbacks (usearch and msgpackr-extract ship linux-x64 prebuilds).
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates python3 make g++; \
    rm -rf /var/lib/apt/lists/*
# Node 22 bundles npm 10, which does not know the `allowScripts` policy (npm RFC 868) or
# `strict-allow-scripts`: it would ignore .npmrc's setting and run EVERY install script. Pin the npm
# that the lockfile is maintained with, verified by its registry integrity (npm view npm@11.19.1 dist.integrity).
ARG NPM_VERSION=11.19.1
ARG NPM_INTEGRITY=sha512-ztsxKxt/kkIaAs+2i0GU6I+DRmUdrNasxTZKJe9TCdSjKxlhah/4r/hl5ygMD6XAg1qZ9c2TNomR4qgOydp10g==
RUN set -eux; \
    cd /tmp; \
    npm pack "npm@${NPM_VERSION}" --silent; \
    actual="sha512-$(openssl dgst -sha512 -binary "npm-${NPM_VERSION}.tgz" | base64 -w0)"; \
    test "${actual}" = "${NPM_INTEGRITY}" || { echo "npm ${NPM_VERSION} integrity mismatch: ${actual}" >&2; exit 1; }; \
    npm install -g --no-audit --no-fund "./npm-${NPM_VERSION}.tgz"; \
    rm "npm-${NPM_VERSION}.tgz"; \
    npm --version
WORKDIR /app
# .npmrc carries strict-allow-scripts=true; package.json's allowScripts allows esbuild (tsx's
# transformer), msgpackr-extract and usearch, and DENIES onnxruntime-node's postinstall.
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund
# The CUDA execution provider, installed at build time on purpose (it is denied in allowScripts, so
# npm ci above left only the CPU binaries that ship inside the package). What the script reads, from
# node_modules/onnxruntime-node/script/install.js and install-utils.js (onnxruntime-node 1.30.0):
#  - ONNXRUNTIME_NODE_INSTALL (or --onnxruntime-node-install=…): "cuda12" forces the linux/x64
#    "cuda12" manifest; "skip" skips. ONNXRUNTIME_NODE_INSTALL_CUDA=v12 is the deprecated spelling.
#  - It resolves Microsoft.ML.OnnxRuntime.Gpu.Linux 1.30.0 on https://api.nuget.org/v3/index.json
#    (install-metadata-versions.js), downloads the .nupkg over HTTPS and extracts
#    libonnxruntime_providers_{cuda,shared,tensorrt}.so into bin/napi-v6/linux/x64/.
#  - Proxies: global-agent's GLOBAL_AGENT_HTTPS_PROXY. The download is not hash-checked by the script.
# The TensorRT provider is removed: the runtime asks for the CUDA EP only, and libnvinfer is not in the
# image. The runtime stage then fails the build unless the CUDA provider's libraries all resolve.
RUN set -eux; \
    ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install; \
    for f in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do \
      test -s "node_modules/onnxruntime-node/bin/napi-v6/linux/x64/$f"; \
    done; \
    rm -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_tensorrt.so; \
    npm cache clean --force

# ---------------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS runtime
# tini: PID 1 that reaps zombies and forwards SIGTERM; bin/launch.mjs forwards it on to the worker.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates tini; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 hyp; \
    useradd --system --uid 10001 --gid hyp --home-dir /app --no-create-home --shell /usr/sbin/nologin hyp; \
    mkdir -p /models /var/cache/hypencoder/shards; \
    chown hyp:hyp /models /var/cache/hypencoder/shards
COPY --from=node /opt/node /opt/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# Only what the worker and the `hypencoder` CLI run: tsx runs the TypeScript sources directly.
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY shared ./shared
COPY gpu-worker/src ./gpu-worker/src
# Every library the CUDA provider links must resolve (libcuda.so.1 itself comes from the host driver
# through the NVIDIA container runtime, so it may be missing at build time).
RUN set -eux; \
    missing="$(LD_LIBRARY_PATH=node_modules/onnxruntime-node/bin/napi-v6/linux/x64 ldd node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so | grep 'not found' | grep -v 'libcuda\.so' || true)"; \
    if [ -n "$missing" ]; then echo "CUDA provider has unresolved libraries:"; echo "$missing"; exit 1; fi; \
    /opt/node/bin/node -e "require('onnxruntime-node')"
# GLIBC_TUNABLES: the value bin/launch.mjs sets, keeping glibc from returning onnxruntime's large buffers
# to the OS after every call. HOST: gpu-worker/src/service/config.ts defaults to 127.0.0.1, which nothing
# outside the container can reach. DEVICE=cuda fails loudly instead of falling back to the CPU.
# NODE_OPTIONS: a JS heap of 16 GiB of the pod's 64 GiB limit (infra/k8s/30-gpu-worker-statefulset.yaml),
# chosen, not V8's default guess: shard data, embeddings and onnxruntime live outside the heap; the heap
# holds ids and stored fields, answers (MAX_ANSWER_BYTES) and a build's text (BUILD_TEXT_BYTES_IN_FLIGHT).
ENV PATH=/opt/node/bin:$PATH \
    NODE_ENV=production \
    NODE_OPTIONS=--max-old-space-size=16384 \
    GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \
    HOST=0.0.0.0 \
    PORT=8081 \
    DEVICE=cuda \
    MODEL_DIR=/models/current \
    SHARD_CACHE_DIR=/var/cache/hypencoder/shards \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# The imported model directory (npx hypencoder import … --out /models/<name>) and the shard cache.
VOLUME ["/models", "/var/cache/hypencoder/shards"]
EXPOSE 8081
USER 10001:10001
# Docker/Compose only (Kubernetes ignores it and uses the probes in infra/k8s/). Start-up loads and
# warms the model before the port opens, hence the long start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8081)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "bin/run-ts.mjs", "gpu-worker/src/server.ts"]
