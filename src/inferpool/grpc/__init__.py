"""gRPC front end of the V2 inference protocol.

grpc_service.proto defines the ``inference.GRPCInferenceService`` service.
scripts/generate_grpc.sh generates the committed grpc_service_pb2* modules
from it. Edit the .proto file and rerun that script instead of editing them.
"""
