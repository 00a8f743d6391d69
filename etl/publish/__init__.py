"""Publishing: masking, rejection reports, Data Docs."""
