namespace Vim.Data.Coco;

/// <summary>One entry of a COCO results file: [x, y, w, h] box and/or a mask, with a confidence score.</summary>
public sealed record CocoDetection(long ImageId, long CategoryId, double Score, double[]? Bbox, CocoSegmentation? Segmentation);
