"""The participant journey: admission, pages, forms, the write actions, the flow between steps."""
