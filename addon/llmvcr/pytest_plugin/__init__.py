"""llm-vcr's pytest plugin (entry point `pytest11: llmvcr`): a cassette per test."""
