# GPU worker image: the project installed, `avatar worker` as the entry point.
# Build:  docker build -t avatar-worker .
# Run:    docker run --gpus all -e AVATAR_BROKER_URL=redis://redis:6379/0 \
#           -e AVATAR_RESULT_BACKEND=redis://redis:6379/1 -v /srv/avatar-data:/data avatar-worker
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    AVATAR_DATA_DIR=/data \
    AVATAR_CACHE_DIR=/data/cache \
    AVATAR_QUEUES=gpu,cpu

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

COPY pyproject.toml README.md ./
COPY avatar_studio ./avatar_studio
COPY avatarclip_core ./avatarclip_core
COPY face2param ./face2param
COPY workers ./workers
COPY web ./web
COPY configs ./configs
RUN pip install --upgrade pip==25.3 && pip install .

ENV AVATAR_CONFIGS_DIR=/app/configs
VOLUME ["/data"]
# Build the body model's cache once per data volume, then consume the queues.
ENTRYPOINT ["/bin/sh", "-c", "avatar warmup && exec avatar worker \"$@\"", "--"]
CMD ["--queues", "gpu,cpu", "--concurrency", "1"]
