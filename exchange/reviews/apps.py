from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "exchange.reviews"
    label = "reviews"
    verbose_name = "Reviews"
