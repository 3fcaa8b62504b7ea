"""Kafka: the local Tansu broker, topic administration and client factories."""
