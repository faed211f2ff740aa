"""The agent desk: where a person sees why a call is coming before picking up.

``mount_desk(app, store, queue)`` serves it under ``/desk`` of ``voicebot
serve``'s HTTP app; ``create_desk_app(store, queue)`` gives the bare app.
"""

from voicebot.agent_desk.app import DESK, create_desk_app, mount_desk

__all__ = ["DESK", "create_desk_app", "mount_desk"]
