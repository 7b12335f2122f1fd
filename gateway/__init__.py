"""The ingest gateway: the HTTP front door where stores' events enter cartbands.

It verifies each webhook (HMAC signatures, shared secrets, bearer tokens), normalizes the
platform's JSON into canonical records (:mod:`schemas.records`) and produces them to
``cart-events`` (key ``store:checkout``) or ``shopper-events`` (key ``store:shopper``),
answering 2xx only once the broker acknowledged (acks=all). Rejections get a status, a counted
reason and a record on ``ingest-dlq``. Stateless: scale by running more copies.

Pure modules (no I/O, ``now`` passed in): :mod:`gateway.signatures`, :mod:`gateway.fields`,
:mod:`gateway.shopify`, :mod:`gateway.bigcommerce`, :mod:`gateway.woocommerce`,
:mod:`gateway.generic`, :mod:`gateway.twilio`, :mod:`gateway.ratelimit`, :mod:`gateway.dlq`,
:mod:`gateway.config`. The shell: :mod:`gateway.app` (aiohttp), :mod:`gateway.output`
(Kafka producer), :mod:`gateway.bigcommerce_api` (REST enrichment), :mod:`gateway.cli`.

May import: aiohttp, aiokafka, orjson, prometheus-client, jsonschema, click, ``schemas``,
``recovery``, ``bus.topics`` and ``cartbands`` shell helpers; never Faust agents.
"""
