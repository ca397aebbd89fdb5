# Dataflow worker image: the Beam Python SDK image with this project installed, so
# workers run the same code and pinned dependencies as the launcher.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/code-corpus:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/code-corpus:0.1.0
#
# then run with --sdk_container_image=<that tag> --sdk_location=container (docs/dataflow.md).
# tests/dataflow_rehearsal.py builds what this file puts in the image, without Docker, and runs
# the pipeline's workers from it.
FROM apache/beam_python3.11_sdk:2.77.0

# git reads local repositories; everything else comes from pip.
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/code-corpus
# The build context less .dockerignore: setup.py, README.md and every package setup.py ships.
COPY . ./
RUN pip install --no-cache-dir ".[gcp]"

# Workers do not run the launcher, which sets this before pyarrow loads (infra/runtime.py): Arrow's
# C++ pool is chosen from it at pyarrow's import, before any DoFn's setup could set it.
ENV ARROW_DEFAULT_MEMORY_POOL=system

# The SDK image's entrypoint starts the Beam worker harness.
ENTRYPOINT ["/opt/apache/beam/boot"]
