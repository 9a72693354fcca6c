"""The outbox: follow-up actions delivered to each pharmacy's endpoint over HTTPS.

`states` names the delivery states, `claims` takes a row for one deliverer at a time and records
what became of it, `payload` makes the signed body, `delivery` sends it and runs the passes,
`supervision` gives supervisors the counts and their retry and discard controls.
"""
