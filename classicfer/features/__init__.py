"""classicfer.features"""
