"""Run the ``rasa`` CLI the fast way: ``python launch_rasa.py run|train ...``.

voicebot starts Rasa through this file (with the Rasa venv's Python).  It
changes nothing in behaviour, only two start-up/latency costs measured here:

1. ``skops.io`` is imported before TensorFlow.  Imported after, it scans
   ``sys.modules`` and loading the model takes 10-15 s instead of ~0.5 s.
2. Rasa checks every action-server answer with ``jsonschema.validate``, which
   re-checks the (constant) schema itself each time: ~30 ms per custom action,
   several per turn.  One compiled validator does the same check in ~0.5 ms.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    _compile_action_result_validation()
    from rasa.__main__ import main

    main()
