"""What an operator sees of a running server: the facts of each request
(request_facts), and what is made of them (metrics, logs, traces)."""
