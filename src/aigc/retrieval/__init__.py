"""Retrieval for the customer-service assistant: search indexes of question-answer pairs."""
