"""The Django project and the marketplace apps."""

from exchange.celery import app as celery_app

__all__ = ["celery_app"]
