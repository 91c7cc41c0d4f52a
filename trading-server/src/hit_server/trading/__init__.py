"""The signal path: a signal admitted (`service`, `admission`), planned (`order_plan`), carried out on the
exchange at most once (`execution`, with clientOrderIds from `ids`), answered (`responses`) and, when its
outcome was unclear, resolved by lookups (`reconcile`)."""
