"""Transports: the ways a caller reaches a call session (SIP/RTP, carrier media
streams, the local sound card, WAV fixtures).  They move audio and events only;
they know nothing about dialogue."""
