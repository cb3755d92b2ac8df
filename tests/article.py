"""The source article's examples, verbatim, for tests that hold the code to them."""

from __future__ import annotations

import json

# The article's section 4.1, verbatim.
ARTICLE_PO_SCHEMA = json.loads("""
{
"name": "create_purchase_order",
"description": "Create PO in ERP (dry-run supported)",
"parameters": {
"type": "object",
"required": ["supplier_id", "items", "dry_run", "idempotency_key"],
"properties": {
"supplier_id": {"type": "string", "pattern": "^SUP-[0-9]{6}$"},
"items": {
"type": "array",
"minItems": 1,
"maxItems": 20,
"items": {
"type": "object",
"required": ["sku", "qty"],
"properties": {
"sku": {"type": "string", "pattern": "^[A-Z0-9-]{3,32}$"},
"qty": {"type": "integer", "minimum": 1, "maximum": 1000}
}
}
},
"dry_run": {"type": "boolean"},
"idempotency_key": {"type": "string", "minLength": 16, "maxLength": 64}
}
}
}
""")

# The article's section 8.2, verbatim (indentation restored).
ARTICLE_RATE_LIMITS = """\
rateLimits:
  llm:
    provider: openai
    requests_per_minute: 300
    tokens_per_minute: 200000
  tools:
    erp_api:
      concurrency: 5
      retry:
        max_attempts: 3
        backoff_ms: [200, 800, 2000]
    email_send:
      concurrency: 20
      daily_cap: 2000
      allow_domains: ["example.co.jp"]
"""
