# The Vestige command line with the reference models: used by the `pruner` service.
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# the archive extra: VESTIGE_ARCHIVE_URL makes the pruner archive what it deletes
RUN pip install '.[archive]'
# [tool.vestige] models = "models" is imported from here, beside pyproject.toml
COPY models ./models
COPY migrations ./migrations
CMD ["vestige", "--help"]
