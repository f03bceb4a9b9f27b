"""Follows, the feed of new works, notifications, saved searches (wishlists) and public
pages: what members see of one another."""
