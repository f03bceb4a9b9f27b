"""Ratings and reviews by licence holders, rights holders' replies, reports and moderation."""
