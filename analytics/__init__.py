"""The analytics service: indicators, the kiwifruit rule pack, device health and anomaly checks -> alarms."""
