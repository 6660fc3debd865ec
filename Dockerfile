# The Vestige command line, run by the `pruner` service against an application's models.
#
# Vestige is installed in /opt/vestige; the application lives in /app, the working
# directory, which is on PYTHONPATH: its pyproject.toml ([tool.vestige] models and
# retention) and its models package. This image carries the reference application there.
# For your own: mount it over /app (VESTIGE_APP_DIR in docker-compose.yml), or build
# FROM this image and COPY it into /app (docs/retention.md, Scheduling).
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONPATH=/app
WORKDIR /opt/vestige
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[archive]'
WORKDIR /app
COPY pyproject.toml ./
COPY models ./models
CMD ["vestige", "--help"]
