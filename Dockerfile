# The production image: gunicorn serves the web; the same image runs Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

RUN useradd --create-home --uid 1000 crm
COPY pyproject.toml README.md ./
# Every app that pyproject.toml packages, so the install sees the whole project; the rest
# (templates, static, locale) comes with `COPY . .`.
COPY accounts ./accounts
COPY crm ./crm
COPY pipelines ./pipelines
COPY reports ./reports
COPY imports ./imports
COPY automation ./automation
COPY integrations ./integrations
RUN pip install -e .
COPY . .
# Hashed, compressed static files for whitenoise; the key is only for this build step.
RUN DEBUG=0 SECRET_KEY=build-only-not-secret python manage.py collectstatic --noinput \
    && mkdir -p var && chown -R crm:crm var

USER crm
EXPOSE 8000
CMD ["sh", "-c", "gunicorn crm.wsgi --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-3} --access-logfile -"]
