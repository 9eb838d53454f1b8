"""classicfer.cnn_head"""
