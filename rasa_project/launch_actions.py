"""Run the actions server the way voicebot needs it: ``python launch_actions.py --port N``.

Same as ``python -m rasa_sdk --actions actions`` except that every request
must carry voicebot's token (see ``process_guard``), CORS is off (no web page
may call it), it listens on ``$SANIC_HOST`` and it dies with voicebot.
"""

from __future__ import annotations

import argparse
import logging
import os

import process_guard


def main() -> None:
    process_guard.die_with_parent()
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--actions", default="actions")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    from rasa_sdk.endpoint import create_app

    app = create_app(args.actions, cors_origins=None)
    expected = process_guard.token()
    if expected:
        process_guard.require_token(app, expected)
    else:
        logging.warning("no $%s: the actions server is unauthenticated", process_guard.TOKEN_ENV)
    app.run(os.environ.get("SANIC_HOST", "127.0.0.1"), args.port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
