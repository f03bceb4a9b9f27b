"""The built-in test provider: behaves like a real one, without a real bank.

It confirms asynchronously through webhooks signed in the Standard Webhooks form, after
a configurable delay, and can be told (per payment, through its ``scenario`` option) to
decline, to deliver an event twice, or to deliver events out of order — the things real
providers do that a platform must survive.

It moves no real money, so it exists only where ``PEERMARK_TEST_PAYMENTS`` is on (the
embedded demo, the tests). Everything about it lives in this folder:

- ``provider.py``: the provider the platform talks to, and its scenarios, declared as
  provider options (the API and the portal offer them without naming this provider);
- ``delivery.py``: the provider's side of the wire, signing and delivering one event —
  over HTTP to the platform's webhook URL when workers run, or straight into the
  webhook handler (signature check included) in the embedded default, where no second
  process exists to receive it;
- ``tasks.py``: the Celery task that delivers, which ``exchange/celery.py`` registers
  when the provider is on.

Only the provider registry (``exchange.payments.providers``) imports it; an import
contract in pyproject.toml keeps it so.
"""
