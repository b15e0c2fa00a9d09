"""Serving: a websocket server speaking FunASR's 2pass protocol (with a web page at /), a gRPC service, and
a client, all over one :class:`~uniasr.serve.engine.Engine` (model worker thread + streaming sessions).

- ``protocol``: FunASR's start message and replies, and how its modes map onto ours.
- ``engine``: the model worker(s): batched ``process_sessions`` over every open stream.
- ``ws_server``: the websocket server, limits, token, TLS, static page (``web/``).
- ``grpc_service``: ``asr.proto``'s ``Recognize`` (bidirectional stream) and ``RecognizeFile``.
- ``app``: builds and runs both in one event loop; ``BackgroundServer`` for tests and notebooks.
- ``client``: stream a file or the microphone to a server; ``cli``: ``uniasr serve`` / ``uniasr client``.

Needs ``websockets`` (and ``grpcio`` + ``grpcio-tools`` for gRPC): ``pip install 'uniasr[serve]'``.
"""
