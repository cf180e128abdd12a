"""Analytical CRM: what the operational records say, computed in SQL.

Every report is one or two SQL statements over the customers a caller may see
(``AnalyticsScope``), answered the same on SQLite and PostgreSQL; Python only
shapes the aggregated rows. The rules behind scores (RFM thresholds, churn
signals, next best action) are in :mod:`crmgraph.analytics.rules`.
"""
