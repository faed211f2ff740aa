"""The Rasa fixtures (managed_rasa, rasa_client, rasa_bank_db) live in tests/conftest.py."""
