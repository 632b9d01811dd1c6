"""Tiers' Django project and trust core."""

from broker.celery import app as celery_app

__all__ = ("celery_app",)
