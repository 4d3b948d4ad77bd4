"""llm-vcr: record and replay LLM API traffic as go-vcr cassettes."""
