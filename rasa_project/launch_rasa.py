"""Run the ``rasa`` CLI the fast way: ``python launch_rasa.py run|train ...``.

voicebot starts Rasa through this file (with the Rasa venv's Python).  It
changes nothing in behaviour, only two start-up/latency costs measured here:

1. ``skops.io`` is imported before TensorFlow.  Imported after, it scans
   ``sys.modules`` and loading the model takes 10-15 s instead of ~0.5 s.
2. Rasa checks every action-server answer with ``jsonschema.validate``, which
   re-checks the (constant) schema itself each time: ~30 ms per custom action,
   several per turn.  One compiled validator does the same check in ~0.5 ms.

It also adds what ``process_guard`` describes: a bearer token on every route
(from the environment, not the command line) and dying with voicebot.
"""

from __future__ import annotations

import process_guard
import skops.io  # noqa: F401  (must come before anything imports TensorFlow)


def _compile_action_result_validation() -> None:
    """Validate action results with a prebuilt validator (same schema, same errors)."""
    try:
        from jsonschema import ValidationError, validators
        from rasa.core.actions import action

        spec = action.RemoteAction.action_response_format_spec()
        validator = validators.validator_for(spec)(spec)
        original = action.RemoteAction._validate_action_result
    except (ImportError, AttributeError):  # another Rasa version: keep its own code
        return

    def _validate_action_result(self: object, result: dict) -> bool:
        try:
            validator.validate(result)
        except ValidationError:
            return original(self, result)  # Rasa's own path, with its error message
        return True

    action.RemoteAction._validate_action_result = _validate_action_result


def _require_token() -> None:
    """Gate every route of the Rasa server (its REST channel too, which Rasa's own
    ``--auth-token`` leaves open) behind voicebot's token from the environment."""
    token = process_guard.token()
    if not token:
        return
    import rasa.core.run

    configure_app = rasa.core.run.configure_app

    def configure_app_with_token(*args: object, **kwargs: object) -> object:
        app = configure_app(*args, **kwargs)
        process_guard.require_token(app, token)
        return app

    rasa.core.run.configure_app = configure_app_with_token


if __name__ == "__main__":
    process_guard.die_with_parent()
    _compile_action_result_validation()
    _require_token()
    from rasa.__main__ import main

    main()
