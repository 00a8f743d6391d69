"""Entity resolution, golden records, survivorship, stable master ids: staging -> core.

The package root imports nothing heavy (the DAG factory reads CORE_TABLES at parse time).
"""

#: the tables `govbase consolidate` publishes in schema core (one Asset each)
CORE_TABLES = (
    "person",
    "person_record",
    "person_id_map",
    "person_pair",
    "legal_entity",
    "legal_entity_record",
    "legal_entity_id_map",
    "legal_entity_pair",
    "person_history",
    "legal_entity_history",
    "provenance",
    "finding",
    "review_queue",
    "legal_representative",
    "employment",
    "person_source",
)
