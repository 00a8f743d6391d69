"""Publishing: masking, rejection reports, Data Docs."""

# masking is imported by etl.normalize (combine) and imports etl.normalize.identifiers:
# load normalize first, so importing etl.publish.masking first is not circular
import etl.normalize  # noqa: F401
